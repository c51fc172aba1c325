"""What other parts of the appliance use from `kiosk.ratings`."""
from kiosk.ratings.core import ASK_REASONS_AT, GROUPS, REASONS, SCORES, InvalidRating, record, report, to_csv
from kiosk.ratings.push import PushReport, PushState, push_due, push_status

__all__ = ["ASK_REASONS_AT", "GROUPS", "REASONS", "SCORES", "InvalidRating", "PushReport", "PushState", "push_due",
           "push_status", "record", "report", "to_csv"]
