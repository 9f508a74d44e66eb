"""The Notion sink: every call to the Notion API goes through ``api.NotionApi``."""
