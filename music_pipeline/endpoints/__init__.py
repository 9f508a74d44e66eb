"""HTTP endpoints beside the Dagster UI: the share endpoint (``POST /tracks``) and Notion's
webhook (``POST /notion/webhook``), served by `music-pipeline up` (see :mod:`.app`)."""
