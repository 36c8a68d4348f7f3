# encrypted_keys_handler.py - Peliqan's "encrypted keys in a table" pattern, step 2 (a public
# endpoint): decrypts the keys of api_keys.api_keys, finds the one the consumer sent in the
# Authorization header, and returns only that consumer's rows of shop.orders.
# See encrypted_keys_create.py for step 1.
from cryptography.fernet import Fernet

fernet = Fernet(pq.get_secret("api_encryption_key"))  # once per worker


def handler(request):
    sent = request['headers'].get('Authorization', '')
    if sent.startswith('Bearer '):
        sent = sent[len('Bearer '):]
    if not sent:
        return {'status': 'unauthorized'}
    dbconn = pq.dbconnect('dw_2')
    consumer_id = None
    for row in dbconn.fetch('dw_2', 'api_keys', 'api_keys'):
        if fernet.decrypt(row['api_key'].encode()).decode() == sent:
            consumer_id = row['id']
            break
    if consumer_id is None:
        return {'status': 'unauthorized'}
    orders = dbconn.fetch('dw_2', 'shop', 'orders')
    return [order for order in orders if order['consumer_id'] == consumer_id]
