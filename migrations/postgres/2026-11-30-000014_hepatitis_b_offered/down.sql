DELETE FROM credentials WHERE hepatitis_b_status = 'offered';
ALTER TABLE credentials DROP CONSTRAINT credentials_hepatitis_b_status_check;
ALTER TABLE credentials ADD CONSTRAINT credentials_hepatitis_b_status_check
    CHECK (hepatitis_b_status IN ('vaccinated', 'immune_by_titre', 'declined', 'contraindicated'));
