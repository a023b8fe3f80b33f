"""One valid intake, as the examples send it, shared by the unit tests."""

from __future__ import annotations

from typing import Any

INTAKE: dict[str, Any] = {
    "complaint_id": "C-1001",
    "customer": {"id": "cust-4471", "name": "Siti Rahmawati"},
    "contact": {"handle": "@siti.rahma", "email": "siti.rahma@example.co.id"},
    "channel": "social",
    "subject": {"kind": "order", "title": "Late delivery", "reference": "8812",
                "value": {"amount_minor": 45_000_000, "currency": "IDR"}},
    "description": "Pesanan #8812 dijanjikan tiba dalam 2 hari, tapi sudah 9 hari belum datang.",
    "severity": "high",
    "jurisdiction": "ID",
    "occurred_at": "2026-11-10T09:30:00+07:00",
}
