"""``varco broker init``: a mosquitto with dynamic security, set up for this host in one command.

Standard library only: it runs on the broker's host, which need not have the gateway installed.
"""

from varco.broker.setup import BrokerSetup, BrokerSetupError, SetupResult, init_broker

__all__ = ["BrokerSetup", "BrokerSetupError", "SetupResult", "init_broker"]
