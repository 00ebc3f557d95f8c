"""Ways a call reaches the session: a simulated customer, websocket media streams (SIP later)."""
