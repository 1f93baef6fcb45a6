"""Attachment text: what PDFs, office files, text, HTML and calendar attachments say, for search.

Where the text lives (a design call): it is extracted in the `emails` stage, which already holds
each message's raw bytes while it parses them, and stored in the `emails` column
`attachment_texts` (one {index, name, text} per attachment that gave text, `index` pointing into
`attachments`). A stage of its own would have to read and parse every raw message a second time
to get at the bytes, or store attachment bytes in the lake, for a few percent of mail.
`email_chunks` then chunks each attachment's text on its own (a chunk never mixes body and
attachment) and every chunk row, in the lake and in LanceDB, says which attachment it came from
(`attachment`, null for the body), so a search hit names the file.

Extraction runs in worker processes (pool.py) under a deadline and a memory limit: a hostile
file can hang or blow up only its worker, which is killed and replaced. Every limit that stops
or cuts an extraction, and every file that cannot be read, leaves a defect on the email
("attachment:<name>: <reason>"); the email and its other attachments are still indexed.
"""

from mail_pipeline.extract.kinds import Extracted, ExtractLimits, Job, kind_of

__all__ = ["ExtractLimits", "Extracted", "Job", "kind_of"]
