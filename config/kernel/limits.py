"""The bounds of every value the API accepts (SPEC 3): the models' columns and the validation share them."""

MAX_USER_ID = 2**53
IDENTITY_MAX_LENGTH = 255
PROPERTY_KEY_MAX_LENGTH = 1024
PROPERTY_VALUE_MAX_LENGTH = 1024
