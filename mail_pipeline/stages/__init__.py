"""Each stage's work as plain functions: no Dagster, so assets, bench and tests call the same code.

A stage function takes what it needs (the lake, an IMAP session opener, the vector store, the
embedder, the retention window) and returns one `PartitionOutcome` per (account, day).
"""

# The stages in the order data flows through them; the sensor, retention, the CLI and the bench
# use this one list.
STAGES = ("raw_messages", "emails", "email_chunks", "email_embeddings")
