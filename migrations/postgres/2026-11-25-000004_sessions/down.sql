DROP TABLE session_completions;
DROP TABLE session_starts;
DROP TABLE session_lots;
DROP TABLE session_packs;
DROP TABLE session_answers;
DROP TABLE sessions;
DROP TABLE clients;
DROP TABLE checklist_templates;
