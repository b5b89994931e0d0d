"""Wallet sales per second through the switch, the provider simulator answering in 50 ms.

Three processes: `forecourt sim wallet` over HTTPS (certificates made here, an
HMAC secret it shares with the switch's key store, every answer after
`--provider-delay` seconds), `forecourt serve` with the provider as a wallet
authoriser (and the usual acquirer link, idle), and `forecourt sim load` sending
only wallet sales (a payment code in ifsf 48-60), MAC'd with the terminals' TAKs.
Every sale is journalled (synchronous=full), signed, sent over the connection
pool, verified and answered. Prints one JSON object.

    .venv/bin/python bench/wallet_throughput.py --duration 10 --concurrency 100
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import _harness as h


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--terminals", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--provider-delay", type=float, default=0.05, help="seconds per answer")
    parser.add_argument("--connections", type=int, default=20, help="HTTPS pool size")
    args = parser.parse_args()

    from forecourt.keys.store import KeyStore
    from forecourt.keys.wallet_secrets import hmac_secret
    from forecourt.switch.demo_wallet import make_certificates

    with tempfile.TemporaryDirectory(prefix="fc-wallet-bench-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        zak = h.prepare_keys(data_dir, h.terminal_ids(args.terminals))
        secret = os.urandom(32)
        store = KeyStore.open(data_dir)
        try:
            store.wallet_secrets().put(hmac_secret("wallet", secret), time.time(), "bench")
        finally:
            store.close()
        ca, certificate, key = make_certificates(work / "tls")
        (work / "secret.hex").write_text(secret.hex())
        wallet_port = h.free_port()
        (work / "wallet.toml").write_text(
            f'merchant_id = "BENCH01"\ndelay_s = {args.provider_delay}\n'
            f'[listen]\nhost = "127.0.0.1"\nport = {wallet_port}\n'
            f'[keys]\nscheme = "hmac-sha256"\nhmac_secret_file = "secret.hex"\n'
        )
        wallet = h.Proc(
            "wallet",
            [
                *h.FORECOURT,
                *("sim", "wallet", "--config", str(work / "wallet.toml")),
                *("--tls-cert", str(certificate), "--tls-key", str(key)),
            ],
            work / "wallet.log",
        )
        h.wait_port(wallet_port)
        acquirer, acquirer_port = h.start_acquirer(work, zak)
        extra = f"""
[[acquirers]]
kind = "wallet"
name = "wallet"
base_url = "https://127.0.0.1:{wallet_port}"
merchant_id = "BENCH01"
connections = {args.connections}
max_in_flight = 4000
request_timeout_s = 10.0
[acquirers.tls]
ca_file = "{ca}"
[[routes]]
acquirer = "wallet"
payment_code_prefixes = ["28"]
"""
        mix = work / "mix.toml"
        codes = ", ".join(f'"28{n:016d}"' for n in range(1, 21))
        mix.write_text(f'[[mix]]\ntemplate = "purchase"\npayment_code = [{codes}]\namount = 1000\n')
        with h.stopping(wallet, acquirer):
            switch, port, _metrics = h.start_switch(
                work,
                data_dir,
                acquirer_port,
                extra_toml=extra,
                max_in_flight=max(8, args.concurrency // args.terminals + 1),
            )
            with h.stopping(switch):
                common = {"terminals": args.terminals, "concurrency": args.concurrency, "mix": mix}
                mac = {"mac": "store", "data-dir": str(data_dir)}
                h.run_load(work, port, duration=2, mac=mac, tag="warm", **common)
                s0, w0 = switch.cpu(), wallet.cpu()
                data = h.run_load(work, port, duration=args.duration, mac=mac, **common)
                s1, w1 = switch.cpu(), wallet.cpu()
    approved = int(data["by_action_code"].get("000", 0))
    h.emit(
        {
            "benchmark": "wallet_throughput",
            "provider_delay_s": args.provider_delay,
            "concurrency": args.concurrency,
            "connections": args.connections,
            "duration_s": data["duration_s"],
            "wallet_sales_per_s": data["throughput_per_s"],
            "approved": approved,
            "by_action_code": data["by_action_code"],
            "timeouts": data["timeouts"],
            "errors": data["errors"],
            "p50_ms": data["latency_ms"]["p50_ms"],
            "p99_ms": data["latency_ms"]["p99_ms"],
            "switch_cpu_ms_per_sale": round((s1 - s0) / max(1, approved) * 1000, 3),
            "provider_cpu_ms_per_sale": round((w1 - w0) / max(1, approved) * 1000, 3),
            "machine": h.machine(),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
