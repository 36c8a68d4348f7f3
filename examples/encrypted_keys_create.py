# encrypted_keys_create.py - Peliqan's "encrypted keys in a table" pattern, step 1: creates an
# API key for one consumer, encrypts it with Fernet under the secret "api_encryption_key", and
# stores it in the warehouse table api_keys.api_keys (id, api_key). Prints the key once.
#
#   portico secret set api_encryption_key   # a Fernet key: python3 -c 'from cryptography.fernet
#                                           #   import Fernet; print(Fernet.generate_key().decode())'
#   portico run examples/encrypted_keys_create.py CONSUMER_ID
import secrets
import sys

from cryptography.fernet import Fernet

consumer_id = int(sys.argv[1])
fernet = Fernet(pq.get_secret("api_encryption_key"))
api_key = secrets.token_urlsafe(32)
encrypted = fernet.encrypt(api_key.encode()).decode()

dbconn = pq.dbconnect('dw_2')
dbconn.write('api_keys', 'api_keys', [{'id': consumer_id, 'api_key': encrypted}], pk='id')
print(api_key)
