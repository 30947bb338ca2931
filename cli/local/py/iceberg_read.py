"""Print every row of an Iceberg table in firehose-local's catalog as one JSON
line (timestamps as RFC 3339), read by pyiceberg: what a query sees.

Usage: python iceberg_read.py --warehouse DIR DATABASE.TABLE [--count]
"""

import argparse
import json

from iceberg_sink import catalog


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", required=True, help="the catalog's directory (<data dir>/iceberg)")
    parser.add_argument("table", help="DATABASE.TABLE, e.g. edgehose.events_segment")
    parser.add_argument("--count", action="store_true", help="print the number of rows only")
    args = parser.parse_args()
    namespace, name = args.table.split(".", 1)
    rows = catalog(args.warehouse).load_table((namespace, name)).scan().to_arrow().to_pylist()
    if args.count:
        print(len(rows))
        return
    for row in rows:
        print(json.dumps(row, default=lambda v: v.isoformat().replace("+00:00", "Z")))


if __name__ == "__main__":
    main()
