"""ESC/POS printing: tickets and status slips rendered as images, durable print jobs, the print worker.

Web workers and the CLI only add rows to `print_jobs` (kiosk/printing/jobs.py); the print worker
(kiosk/printing/worker.py) is the one process that opens the printer.
"""
