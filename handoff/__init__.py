"""Human handoff: the queue of interested customers, routed to call-center agents."""
