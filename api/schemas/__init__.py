"""Request and response models at the API edge (pydantic), one module per file of api/routes/
(jobs.py holds what routes/jobs.py takes and answers); the pieces several share are bases.py,
fields.py, pages.py and errors.py. The OpenAPI document is generated from them."""
