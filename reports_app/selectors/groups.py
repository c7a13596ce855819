"""The names of a report's groups, shared by every report type: the group of people with no value, everything beyond
the top groups, and the one series of an ungrouped report."""

NONE_GROUP = "(none)"
OTHER_GROUP = "Other"
ALL_GROUP = "All"
TOP_GROUPS = 10
