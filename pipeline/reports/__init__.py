"""Clinic adherence summaries: outbox/<clinic_id>/<report date>/summary.{html,pdf,csv,json}.

Reads only the warehouse marts (weekly_adherence, daily_activity, daily_crosscheck, run_info) and
the participant registry; e-mails the files when an [smtp] section is configured.
"""

from pipeline.reports.render import write_clinic_reports

__all__ = ["write_clinic_reports"]
