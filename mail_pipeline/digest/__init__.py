"""The daily digest: what needs the owner (build.py), as Markdown and HTML (render.py), by SMTP (delivery.py)."""
