"""The notifier: alerts from the ``alerts`` topic, grouped into incidents, delivered to people.

``driftline notify`` reads ``alerts`` in a consumer group (scale it like the other services: one
member owns each partition, the others stand by), folds the alerts of one model version that fire
together into one incident (:mod:`~services.notify.incidents`), and delivers each incident's
changes to the routes that want them (:mod:`~services.notify.routes`): Prometheus Alertmanager,
generic webhooks (signed, with an idempotency key) and Slack-compatible incoming webhooks
(:mod:`~services.notify.payloads`). Deliveries go through an outbox in Redis
(:mod:`~services.notify.outbox`), so a notifier killed at any point delivers each change once
when it or another member takes over; a failing endpoint retries with backoff on a thread of its
own (:mod:`~services.notify.delivery`), then dead-letters the alerts it could not deliver.
"""
