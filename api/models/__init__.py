"""The shapes of the API's answers (pydantic), one module per resource, as the OpenAPI document
shows them."""
