"""driftloop console: server-rendered pages over the other services' REST APIs and topics."""
