#!/usr/bin/env python3
"""Converts CDNOW_master.txt (see PROVENANCE.md) to Presage's extract contract.

    python3 datasets/cdnow/convert.py     # writes users.csv and events.csv beside this script

users.csv:  user_id, signup_at (the date of the customer's first purchase: CDNOW's
            cohort is defined by it), first_purchase_cds, first_purchase_dollars
events.csv: user_id, event ("purchase"), occurred_at (the purchase date; the source
            has no time of day), cds, dollars
Rows are written in source order; the script is deterministic (stdlib only).
"""
import csv
from pathlib import Path

HERE = Path(__file__).resolve().parent


def iso(day):
    return f"{day[0:4]}-{day[4:6]}-{day[6:8]}"


def main():
    lines = (HERE / "CDNOW_master.txt").read_text().splitlines()
    header = lines[0].split()
    assert header == ["customer_id", "date", "number_of_cds", "dollar_value"], header
    users = {}
    with open(HERE / "events.csv", "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["user_id", "event", "occurred_at", "cds", "dollars"])
        for line in lines[1:]:
            customer, day, cds, dollars = line.split()
            out.writerow([customer, "purchase", iso(day), cds, dollars])
            first = users.get(customer)
            if first is None or day < first[0]:
                users[customer] = (day, int(cds), float(dollars))
            elif day == first[0]:
                users[customer] = (day, first[1] + int(cds), first[2] + float(dollars))
    with open(HERE / "users.csv", "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["user_id", "signup_at", "first_purchase_cds", "first_purchase_dollars"])
        for customer in sorted(users):
            day, cds, dollars = users[customer]
            out.writerow([customer, iso(day), cds, f"{dollars:.2f}"])
    print(f"{len(users)} users, {len(lines) - 1} events")


if __name__ == "__main__":
    main()
