DELETE FROM incident_follow_ups WHERE kind = 'evaluation_completed';
ALTER TABLE incident_follow_ups DROP CONSTRAINT incident_follow_ups_kind_check;
ALTER TABLE incident_follow_ups ADD CONSTRAINT incident_follow_ups_kind_check
    CHECK (kind IN ('evaluation_offered', 'written_opinion', 'authority_report', 'other'));
