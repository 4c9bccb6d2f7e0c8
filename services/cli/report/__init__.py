"""`driftline report`: figures computed from the topics (``figures``), drawn as one page (``page``)."""
