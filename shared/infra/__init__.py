"""Local Kafka and Redis as background processes: what `driftline infra up|down|status` runs.

``process`` starts and stops detached processes, ``ports`` picks ports, ``kafka`` and ``redis``
know their servers, and ``stack`` puts them together with the state file under DRIFTLINE_HOME.
"""
