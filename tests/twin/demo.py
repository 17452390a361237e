"""The demo data set of the reference twin (twin.py --demo), in the spirit of the acmecorp example.

Pure data: twin.py stores it into an empty state. The schemas cover the AVRO shapes twinfs must
decode: string, long, int, double, float, boolean, bytes, enum, array, map, nested record,
optional (union of null and string), logical types date and timestamp-millis.

T2 type AcmecorpExampleReq (any demo asset) serves:
  manual.pdf   a small valid PDF made at start-up (application/pdf)
  README.txt   a short text (text/plain)
  dataset.bin  128 MiB generated on the fly, the Generated provider's content
               (application/octet-stream), never stored on disk
"""

SCHEMAS = [
    ("NewDocSet", 1, {
        "type": "record", "name": "NewDocSet", "namespace": "com.acmecorp.docs",
        "fields": [
            {"name": "docset_id", "type": "string"},
            {"name": "title", "type": "string"},
            {"name": "published", "type": {"type": "int", "logicalType": "date"}},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
            {"name": "author", "type": ["null", "string"], "default": None},
            {"name": "size_bytes", "type": "long"},
            {"name": "checksum", "type": "bytes"},
            {"name": "properties", "type": {"type": "map", "values": "string"}},
        ],
    }),
    ("SensorReading", 1, {
        "type": "record", "name": "SensorReading", "namespace": "com.acmecorp.telemetry",
        "fields": [
            {"name": "sensor", "type": "string"},
            {"name": "unit", "type": {"type": "enum", "name": "Unit",
                                      "symbols": ["CELSIUS", "BAR", "RPM", "PERCENT"]}},
            {"name": "value", "type": "double"},
            {"name": "ok", "type": "boolean"},
            {"name": "samples", "type": "int"},
            {"name": "location", "type": {
                "type": "record", "name": "Location",
                "fields": [
                    {"name": "lat", "type": "double"},
                    {"name": "lon", "type": "double"},
                    {"name": "site", "type": ["null", "string"], "default": None},
                ]}},
        ],
    }),
    ("MaintenanceDue", 2, {
        "type": "record", "name": "MaintenanceDue", "namespace": "com.acmecorp.service",
        "fields": [
            {"name": "task", "type": "string"},
            {"name": "due", "type": {"type": "int", "logicalType": "date"}},
            {"name": "priority", "type": {"type": "enum", "name": "Priority",
                                          "symbols": ["LOW", "MEDIUM", "HIGH"]}},
            {"name": "parts", "type": {"type": "array", "items": {
                "type": "record", "name": "Part",
                "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}},
            {"name": "notes", "type": ["null", "string"], "default": None},
            {"name": "estimate_hours", "type": "float"},
            {"name": "scheduled_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        ],
    }),
]

ASSETS = ["acme-plant-berlin", "acme-pump-01", "acme-pump-02", "acme-valve-07"]

_DOCS = {"pdf": "manual.pdf", "lang": "en"}

EVENTS = [
    ("acme-plant-berlin", "NewDocSet", 1, "acme-docs", "2026-01-05T08:00:00.000Z",
     {"docset_id": "DS-1001", "title": "Berlin plant safety handbook", "published": 20458,
      "tags": ["safety", "plant"], "author": "H. Weber", "size_bytes": 482113,
      "checksum": "\u00de\u00ad\u00be\u00ef", "properties": {"lang": "de", "rev": "7"}}),
    ("acme-plant-berlin", "SensorReading", 1, "acme-scada", "2026-01-05T08:01:00.000Z",
     {"sensor": "ambient-temp", "unit": "CELSIUS", "value": 21.5, "ok": True, "samples": 60,
      "location": {"lat": 52.52, "lon": 13.405, "site": "hall A"}}),
    ("acme-pump-01", "NewDocSet", 1, "acme-docs", "2026-01-05T09:00:00.000Z",
     {"docset_id": "DS-2001", "title": "Pump P-100 operating manual", "published": 20400,
      "tags": ["manual", "pump", "P-100"], "author": None, "size_bytes": 1048576,
      "checksum": "\u0001\u0002\u0003", "properties": _DOCS}),
    ("acme-pump-01", "SensorReading", 1, "acme-scada", "2026-01-05T09:05:00.000Z",
     {"sensor": "discharge-pressure", "unit": "BAR", "value": 6.25, "ok": True, "samples": 120,
      "location": {"lat": 52.5201, "lon": 13.4051, "site": None}}),
    ("acme-pump-01", "SensorReading", 1, "acme-scada", "2026-01-05T09:10:00.000Z",
     {"sensor": "shaft-speed", "unit": "RPM", "value": 2950.0, "ok": False, "samples": 120,
      "location": {"lat": 52.5201, "lon": 13.4051, "site": "hall B"}}),
    ("acme-pump-01", "MaintenanceDue", 2, "acme-service", "2026-01-05T09:15:00.000Z",
     {"task": "replace mechanical seal", "due": 20490, "priority": "HIGH",
      "parts": [{"sku": "SEAL-40", "qty": 1}, {"sku": "ORING-12", "qty": 4}],
      "notes": "vibration above limit since 2026-01-03", "estimate_hours": 3.5,
      "scheduled_at": 1770278400000}),
    ("acme-pump-02", "SensorReading", 1, "acme-scada", "2026-01-05T10:00:00.000Z",
     {"sensor": "discharge-pressure", "unit": "BAR", "value": 5.75, "ok": True, "samples": 120,
      "location": {"lat": 52.5202, "lon": 13.4052, "site": "hall B"}}),
    ("acme-pump-02", "MaintenanceDue", 2, "acme-service", "2026-01-05T10:05:00.000Z",
     {"task": "annual inspection", "due": 20550, "priority": "LOW", "parts": [],
      "notes": None, "estimate_hours": 1.0, "scheduled_at": 1775433600000}),
    ("acme-valve-07", "SensorReading", 1, "acme-scada", "2026-01-05T11:00:00.000Z",
     {"sensor": "opening", "unit": "PERCENT", "value": 42.0, "ok": True, "samples": 10,
      "location": {"lat": 52.5203, "lon": 13.4053, "site": None}}),
    ("acme-valve-07", "NewDocSet", 1, "acme-docs", "2026-01-05T11:30:00.000Z",
     {"docset_id": "DS-3001", "title": "Valve V-7 datasheet", "published": 20300,
      "tags": [], "size_bytes": 20480, "checksum": "", "properties": {}}),
    ("acme-valve-07", "MaintenanceDue", 2, "acme-service", "2026-01-05T11:45:00.000Z",
     {"task": "actuator calibration", "due": 20470, "priority": "MEDIUM",
      "parts": [{"sku": "CAL-KIT", "qty": 1}], "notes": "bring the handheld",
      "estimate_hours": 0.75, "scheduled_at": 1771574400000}),
]

README = """ACME Corp demo twin
Try: cat t2/AcmecorpExampleReq/manual.pdf, or dataset.bin (128 MiB, generated)
"""
