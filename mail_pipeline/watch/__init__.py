"""The live-mail watcher: IMAP IDLE per synced folder, telling the new-mail sensor which accounts
changed (it never writes the lake: Dagster runs the stages, and the UI shows every run)."""
