-- device_totals: a device's own daily total (where the format gives one) per participant, local
-- day, source and device, for daily_crosscheck. A day split over several sync files reports partial
-- totals: the largest is the device's total for the day (a re-export repeats the same total).
-- Input (pipeline/derived.py, _Builder.device_totals): device_total_rows, the lake's new daily
-- totals and the previous build's totals of the months they touch (the largest of those is the
-- largest of all).
-- Units: steps.
select participant_id, local_date, source, device, max(steps) as steps
from device_total_rows
group by participant_id, local_date, source, device
