"""The probe kinds: each is one module, registered here by its checks.yaml ``type``."""

from monitor.probes import http, tcp
from monitor.probes.base import ProbeKind

PROBES: dict[str, ProbeKind] = {"http": http.KIND, "tcp": tcp.KIND}
