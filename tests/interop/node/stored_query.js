// A node-soap client built from a WSDL URL sends one IHE stored query (ITI-18 / ITI-38) and prints
// {"status", "contentType", "response", "request"} (HTTP status, raw response and request) as JSON.
//   node stored_query.js <wsdl-url> <operation> <wsa-action> <query-id> <slots-json> [address]
// node-soap does not write WS-Addressing headers from wsam:Action, so they are added here.
'use strict';
const crypto = require('crypto');
const soap = require('soap');

const WSA = 'http://www.w3.org/2005/08/addressing';

async function main() {
  const [wsdlUrl, operation, action, queryId, slotsJson, address] = process.argv.slice(2);
  const client = await soap.createClientAsync(wsdlUrl, { forceSoap12Headers: true });
  if (address) client.setEndpoint(address);
  client.addSoapHeader(`<wsa:Action xmlns:wsa="${WSA}">${action}</wsa:Action>`);
  client.addSoapHeader(`<wsa:MessageID xmlns:wsa="${WSA}">urn:uuid:${crypto.randomUUID()}</wsa:MessageID>`);
  const slots = JSON.parse(slotsJson);
  const request = {
    ResponseOption: { attributes: { returnType: 'LeafClass', returnComposedObjects: 'true' } },
    AdhocQuery: {
      attributes: { id: queryId },
      Slot: Object.entries(slots).map(([name, values]) => ({ attributes: { name }, ValueList: { Value: values } })),
    },
  };
  let status = 200;
  let contentType = '';
  let response;
  try {
    const [, raw] = await client[`${operation}Async`](request);
    response = raw;
    contentType = (client.lastResponseHeaders || {})['content-type'] || '';
  } catch (err) {
    if (!err.response) throw err;
    status = err.response.status;
    contentType = err.response.headers['content-type'] || '';
    response = err.body || err.response.data;
  }
  process.stdout.write(JSON.stringify({ status, contentType, response, request: client.lastRequest }));
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
