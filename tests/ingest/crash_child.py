"""Child process for the crash tests: ingest one site, then hang at a chosen point to be SIGKILLed.

argv: mode marker_path site_url site_id patient_id
  mode "commit": hang inside the Iceberg commit of raw.glucose_entries (data files already written)
  mode "ledger": hang after every Iceberg commit, before the landed ledger is written
The secret comes from the CASCADE_TEST_NS_SECRET environment variable, CASCADE_HOME from the env.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pyiceberg.table import Transaction

from workbench.ingest.client import RetryPolicy
from workbench.ingest.run import ingest
from workbench.ingest.sites import Site
from workbench.ingest.stage import StageArea


def hang(marker: Path) -> None:
    marker.write_text("ready")
    time.sleep(120)
    raise SystemExit("not killed")


def main() -> None:
    mode, marker, url, site_id, patient_id = sys.argv[1:6]
    marker_path = Path(marker)
    if mode == "commit":
        original = Transaction.commit_transaction

        def commit_transaction(self: Transaction):  # type: ignore[no-untyped-def]
            if self._table.name()[-1] == "glucose_entries":
                hang(marker_path)
            return original(self)

        Transaction.commit_transaction = commit_transaction  # type: ignore[method-assign]
    elif mode == "ledger":
        StageArea.mark_landed = lambda self, load_ids, detail: hang(marker_path)  # type: ignore[method-assign]
    site = Site(
        site_id=site_id, patient_id=patient_id, url=url, secret_env="CASCADE_TEST_NS_SECRET", overlap_minutes=120.0
    )
    ingest(branch="dev", sites=[site], retry=RetryPolicy(attempts=3, base_seconds=0.01))
    raise SystemExit("finished without hanging")


if __name__ == "__main__":
    main()
