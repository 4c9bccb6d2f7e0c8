"""The monitor's analytics for one model: per version, rolling error, drift and the alerts they raise."""
