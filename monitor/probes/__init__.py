"""The probe kinds: each is one module, registered here by its checks.yaml ``type``."""

from monitor.probes import dns, heartbeat, http, soap, tcp, tls, transaction
from monitor.probes.base import ProbeKind

PROBES: dict[str, ProbeKind] = {
    "http": http.KIND,
    "soap": soap.KIND,
    "tcp": tcp.KIND,
    "tls": tls.KIND,
    "dns": dns.KIND,
    "heartbeat": heartbeat.KIND,
    "transaction": transaction.KIND,
}
