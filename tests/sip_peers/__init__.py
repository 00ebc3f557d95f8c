"""Real SIP peers for tests: external SIP user agents run on loopback (see ``baresip``)."""
