"""The monitor service: joins predictions with labels and watches for drift."""
