"""Owner notices: vehicle registry, legal catalogue, the notice workflow and SMS alerts.

Modules (import what you need; this package imports nothing heavy):

- `api.notices.registry`: CSV import of the vehicle registry with a report of rejected rows, and the
  `RegistryAdapter` protocol (the database implementation reads personal data and audits each read).
- `api.notices.catalogue`: fines as versioned data (`api/data/decree_168_2024.yaml`).
- `api.notices.workflow`: notice creation on a confirmed violation, states and transitions, clocks.
- `api.notices.sms`: message text and GSM-7/UCS-2 segments, providers, the durable SMS outbox.
"""
