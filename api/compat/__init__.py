"""Wire-compatible surfaces: other vendors' APIs translated into promptq's own admission and job
code (api/admission.py, api/submissions.py), so nothing about jobs is written twice."""
