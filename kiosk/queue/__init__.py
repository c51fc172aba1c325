"""The hall queue: services, daily ticket numbering, counters calling tickets, the hall display."""
