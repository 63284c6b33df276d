"""The gateway's settings: one object per process, from the environment (``VARCO_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from varco.protocol import ID_PATTERN
from varco.transport import BrokerAddress, Tls, TlsError


class SettingsError(ValueError):
    """A ``VARCO_*`` variable that cannot be used; the message names each one and why."""


class Settings(BaseSettings):
    """Where the gateway finds its broker and database, and how it serves its API."""

    model_config = SettingsConfigDict(env_prefix="VARCO_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///varco.db",
        description="SQLAlchemy URL: a SQLite file by default, or postgresql+psycopg://...",
    )
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls: bool = Field(
        default=False,
        description="TLS to the broker (port 8883, usually); its certificate is always verified",
    )
    mqtt_tls_ca_file: Path | None = Field(
        default=None,
        description="The CA that signed the broker's certificate (the system's when unset)",
    )
    mqtt_tls_cert_file: Path | None = Field(
        default=None, description="The gateway's own certificate, for brokers that ask for one"
    )
    mqtt_tls_key_file: Path | None = Field(
        default=None, description="The private key of mqtt_tls_cert_file (if not in that file)"
    )
    gateway_id: str = Field(
        default="gateway-1",
        pattern=ID_PATTERN,
        description="This replica's MQTT client id; stable, so its session survives restarts.",
    )
    share_group: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description=(
            "Set it to run several replicas: replicas in one group share the devices' "
            "messages ($share/<group>/...). Unset (one gateway), the subscription is a plain "
            "persistent one, which mosquitto 2.0 keeps across its own restarts; it does not "
            "restore shared subscriptions from its persistence file."
        ),
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description=(
            "The largest request body the API reads; a larger one is refused with 413 before "
            "it is read (the largest legitimate body, a plan with 64 windows, is a few KB)."
        ),
    )
    policy_refresh_seconds: float = Field(
        default=0.25,
        gt=0,
        description=(
            "How often a replica looks for changes made through the others: one indexed read,"
            " then only the changed rows."
        ),
    )
    device_tap_rate: float = Field(
        default=50.0,
        gt=0,
        description=(
            "Online taps a second one device may ask the gateway to decide (and as many at "
            "once); beyond, its taps are refused unanswered (counted as rejected_tap_rate) and "
            "its doors decide offline. A reader is tapped once a second at most."
        ),
    )

    allowlist_ttl_seconds: float = Field(
        default=86_400.0,
        ge=60,
        description=(
            "How long a door may trust its cached allow-list without hearing from the gateway; "
            "lists are reissued at half this age."
        ),
    )

    provisioning: Literal["none", "dynsec"] = Field(
        default="none",
        description=(
            "'dynsec': creating a device also creates its broker identity through Mosquitto's "
            "dynamic-security plugin, and revoking it disables that identity; the gateway's "
            "MQTT account needs the varco-gateway role (deploy/mosquitto/README.md). 'none': "
            "an open broker, as in the demo; devices get no credentials."
        ),
    )
    provisioning_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="How long to wait for the broker's dynsec answer"
    )
    device_broker_host: str | None = Field(
        default=None,
        description=(
            "The broker host written into a device's configuration, as the Pis reach it; "
            "mqtt_host when unset"
        ),
    )
    device_broker_port: int | None = Field(
        default=None, ge=1, le=65535, description="The devices' broker port; mqtt_port when unset"
    )
    device_broker_tls: bool | None = Field(
        default=None,
        description="Whether devices reach the broker over TLS; as the gateway does when unset",
    )
    device_broker_tls_ca_file: str | None = Field(
        default=None,
        description=(
            "The broker's CA file as a path on the Pis, written into their configuration; "
            "unset, they trust their system's CAs"
        ),
    )

    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description=(
            "The gateway's address as members' browsers reach it (https://varco.example.org), "
            "for the profile links it makes; unset, a link is its path only"
        ),
    )

    influx_url: str | None = Field(
        default=None,
        description="InfluxDB's URL (v2 write API); unset, nothing is recorded to InfluxDB",
    )
    influx_org: str = Field(default="varco", description="The InfluxDB organization")
    influx_bucket: str = Field(default="varco", description="The InfluxDB bucket")
    influx_token: SecretStr | None = Field(default=None, description="An InfluxDB write token")
    recorder_outbox: Path = Field(
        default=Path("recorder-outbox.db"),
        description="The SQLite file where points wait until InfluxDB acknowledges them",
    )
    recorder_max_points: int = Field(
        default=1_000_000,
        ge=1,
        description="The recorder outbox's bound; at it the oldest points are dropped, counted",
    )

    access_log_retention_days: float = Field(
        default=365.0,
        ge=0,
        description=(
            "How long the SQL access log keeps who went where; older taps are deleted daily. "
            "0 keeps them forever."
        ),
    )

    @field_validator("mqtt_tls_ca_file", "mqtt_tls_cert_file", "mqtt_tls_key_file")
    @classmethod
    def _is_a_file(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path

    @model_validator(mode="after")
    def _tls_can_be_used(self) -> Settings:
        tls = self.broker().tls
        if tls is not None:
            try:
                tls.check()
            except TlsError as exc:
                variable = f"VARCO_MQTT_TLS_{exc.file.upper()}" if exc.file else "VARCO_MQTT_TLS"
                raise PydanticCustomError(
                    "tls", "{variable}: {reason}", {"variable": variable, "reason": exc.reason}
                ) from None
        return self

    def device_broker_uses_tls(self) -> bool:
        """Tell whether the configuration written for a device turns TLS on."""
        if self.device_broker_tls is not None:
            return self.device_broker_tls
        return self.broker().tls is not None

    def broker(self) -> BrokerAddress:
        """Return the broker address these settings describe."""
        files = (self.mqtt_tls_ca_file, self.mqtt_tls_cert_file, self.mqtt_tls_key_file)
        return BrokerAddress(
            host=self.mqtt_host,
            port=self.mqtt_port,
            username=self.mqtt_username,
            password=self.mqtt_password.get_secret_value() if self.mqtt_password else None,
            tls=Tls(*files) if self.mqtt_tls or any(files) else None,
        )


def load_settings() -> Settings:
    """Read the settings from the environment; raise ``SettingsError`` naming what is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            # A check of several variables together names them in its message.
            f"VARCO_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            if error["loc"]
            else error["msg"]
            for error in exc.errors(include_url=False)
        ]
        raise SettingsError("\n".join(problems)) from None
