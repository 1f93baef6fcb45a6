"""`python -m mail_pipeline.cli`: the same as the `mail-pipeline` command."""

import sys

from mail_pipeline.cli.main import main

sys.exit(main())
