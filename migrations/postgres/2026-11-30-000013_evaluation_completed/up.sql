-- A follow-up may record that the exposed person's medical evaluation was completed: the
-- written opinion is due 15 days after it (29 CFR 1910.1030(f)(5)).
ALTER TABLE incident_follow_ups DROP CONSTRAINT incident_follow_ups_kind_check;
ALTER TABLE incident_follow_ups ADD CONSTRAINT incident_follow_ups_kind_check
    CHECK (kind IN ('evaluation_offered', 'evaluation_completed', 'written_opinion', 'authority_report', 'other'));
