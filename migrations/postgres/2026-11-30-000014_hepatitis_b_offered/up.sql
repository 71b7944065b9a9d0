-- A hepatitis B status of "offered" (accepted, series not complete): OSHA 29 CFR
-- 1910.1030(f)(2) asks that the vaccine be offered.
ALTER TABLE credentials DROP CONSTRAINT credentials_hepatitis_b_status_check;
ALTER TABLE credentials ADD CONSTRAINT credentials_hepatitis_b_status_check
    CHECK (hepatitis_b_status IN ('offered', 'vaccinated', 'immune_by_titre', 'declined', 'contraindicated'));
