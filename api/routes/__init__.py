"""The routes of the API, one `APIRouter` per resource."""
