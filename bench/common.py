"""
Pieces every benchmark shares: a P-256 certificate, configurations, CPU
pinning, reading another process's CPU time, and summary statistics.
"""

from __future__ import annotations

import datetime
import os
import statistics
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.constants import CipherSuite, NamedGroup

#: The suite every benchmark negotiates (issue 6: ECDHE-ECDSA, AES-128-GCM).
SUITE = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
OPENSSL_CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"

#: Group name as the bench reports it -> our NamedGroup.
GROUPS = {"P-256": NamedGroup.secp256r1, "x25519": NamedGroup.x25519}


@dataclass(frozen=True)
class Credential:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def write(self, directory: str) -> tuple[str, str]:
        """
        Write C{key.pem} and C{cert.pem} into C{directory}; return their paths.
        """
        key_path = os.path.join(directory, "key.pem")
        cert_path = os.path.join(directory, "cert.pem")
        with open(key_path, "wb") as f:
            f.write(
                self.key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        with open(cert_path, "wb") as f:
            f.write(self.cert.public_bytes(serialization.Encoding.PEM))
        return key_path, cert_path


def make_credential(name: str = "localhost") -> Credential:
    """
    A self-signed P-256 certificate for C{name}.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Credential(cert, key)


def server_configuration(credential: Credential, group: str = "P-256") -> DTLSConfiguration:
    return DTLSConfiguration(
        certificate_chain=[credential.cert],
        private_key=credential.key,
        cipher_suites=(SUITE,),
        groups=(GROUPS[group],),
    )


def client_configuration(group: str | None = None) -> DTLSConfiguration:
    """
    A client that does not check the server's certificate: the bench
    measures the server, and the client is a load generator.
    """
    groups = (GROUPS[group],) if group else tuple(GROUPS.values())
    return DTLSConfiguration(verify_peer=False, cipher_suites=(SUITE,), groups=groups)


# -- CPUs and processes ----------------------------------------------------------------

def available_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


def pin(cpu: int | None) -> bool:
    """
    Pin this process to C{cpu}; C{False} where the machine does not allow it.
    """
    if cpu is None:
        return False
    try:
        os.sched_setaffinity(0, {cpu})
        return True
    except (AttributeError, OSError):
        return False


def cpu_plan() -> dict[str, int | None]:
    """
    Which CPU the server and the load generator run on. With two or more
    CPUs they get one each (the orchestrating process shares the load
    generator's, and sleeps while a load runs); with one, nothing is pinned.
    """
    cpus = available_cpus()
    if len(cpus) >= 2:
        return {"server": cpus[0], "loadgen": cpus[1]}
    return {"server": None, "loadgen": None}


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float:
    """
    User + system CPU seconds used so far by process C{pid} (all threads),
    from C{/proc/PID/stat}; resolution one clock tick (usually 10 ms), so
    measured intervals should be seconds long.
    """
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    # The command name may contain spaces; fields resume after its ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS


def rss_bytes(pid: int | None = None) -> int:
    """
    Resident set size of C{pid} (default: this process), from C{/proc}.
    """
    with open(f"/proc/{pid or 'self'}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- statistics -----------------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    n: int

    @property
    def spread(self) -> float:
        """(max - min) / median: the relative spread of the samples."""
        return (self.high - self.low) / self.median if self.median else 0.0


def summarize(samples: list[float]) -> Summary:
    return Summary(statistics.median(samples), min(samples), max(samples), len(samples))
