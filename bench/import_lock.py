"""How long another clerk's save waits while a 50,000-row purchase import runs on SQLite
(issue 10 point 1). ``python -m bench.import_lock [--rows 50000]``

One thread imports a valid 50,000-row CSV into G1's record; the main thread meanwhile saves
one purchase at a time into G2's record and records each save's latency. Prints the import's
own time, the number of saves made during it and the longest save.
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import UTC, datetime

from bench.scratch import bench_database
from tests.conftest import build_world
from workflow.app import purchase_import, purchases
from workflow.domain import clock

NOW = datetime(2021, 11, 1, 2, 0, tzinfo=UTC)
HEADER = "订单号,商品行号,支付时间,实付金额,领取人数,商品名称,商品形态,经费来源,渠道,原订单号"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    lines = [HEADER] + [f"L{i},1,2021-10-20 10:00,12.50,1,梅州金柚,实物,额外额度,粤工惠购," for i in range(args.rows)]
    data = ("\r\n".join(lines) + "\r\n").encode()
    with bench_database("sqlite", prefix="bangfu_import_lock") as database, clock.frozen(NOW):
        database.upgrade()
        w = build_world(database)
        w.plan("G1")
        w.plan("G2")
        done: dict[str, float] = {}

        def importer() -> None:
            start = time.perf_counter()
            result = purchase_import.import_purchases(w.uow(), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"),
                                                      data=data, filename="big.csv", now=NOW)
            done["seconds"] = time.perf_counter() - start
            done["new"] = result.new

        thread = threading.Thread(target=importer)
        rid, uid = w.rid("G2"), w.uid("g2-clerk")
        latencies: list[float] = []
        thread.start()
        n = 0
        while thread.is_alive():
            t0 = time.perf_counter()
            purchases.add_purchase(w.uow(), record_id=rid, user_id=uid, now=NOW, purchase=purchases.PurchaseInput(
                paid_at=NOW, channel="ygh", amount_fen=1000, people=1, order_no=f"S-{n}"))
            latencies.append(time.perf_counter() - t0)
            n += 1
        thread.join()
        latencies.sort()
        print(f"import of {args.rows:,} rows: {done['seconds']:.2f} s, {done['new']:,} new")
        print(f"other clerk's saves during it: {len(latencies)}, "
              f"median {latencies[len(latencies) // 2] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
