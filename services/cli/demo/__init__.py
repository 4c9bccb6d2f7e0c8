"""`driftline demo`: a synthetic stream through real services, a live view and a summary."""
