// A real SMPP 3.4 message centre on loopback for the text message tests (npm `smpp`).
//
//   node smpp_server.js PORT SYSTEM_ID PASSWORD
//
// Listens on 127.0.0.1:PORT (0: any free port) and writes one JSON line to stdout per event:
//   {"listening": port}
//   {"bound": system_id}                   a bind_transceiver/transmitter it accepted
//   {"refused_bind": system_id}            one with the wrong account or password
//   {"submit_sm": {destination, destination_ton, destination_npi, source, source_ton,
//                  registered_delivery, data_coding, text, message_id}}
//   {"deliver_sm_resp": {sequence, status}}
// Reads JSON lines on stdin:
//   {"receipt": {"message_id": "...", "stat": "DELIVRD"}}  sends that delivery receipt
//       (deliver_sm with esm_class 0x04, the appendix B text and the receipted_message_id
//       and message_state TLVs) on the newest bound session.
'use strict';

const smpp = require('smpp');
const readline = require('readline');

const [port, systemId, password] = process.argv.slice(2);
const sessions = [];
let nextId = 1;

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

const states = { DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8 };

const server = smpp.createServer((session) => {
  session.on('error', () => {});
  const bind = (pdu) => {
    if (pdu.system_id !== systemId || pdu.password !== password) {
      emit({ refused_bind: pdu.system_id });
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      session.close();
      return;
    }
    emit({ bound: pdu.system_id });
    sessions.push(session);
    session.send(pdu.response());
  };
  session.on('bind_transceiver', bind);
  session.on('bind_transmitter', bind);
  session.on('submit_sm', (pdu) => {
    const messageId = 'msg-' + nextId++;
    const message = pdu.short_message && pdu.short_message.message !== undefined
      ? pdu.short_message.message
      : String(pdu.short_message);
    emit({
      submit_sm: {
        destination: pdu.destination_addr,
        destination_ton: pdu.dest_addr_ton,
        destination_npi: pdu.dest_addr_npi,
        source: pdu.source_addr,
        source_ton: pdu.source_addr_ton,
        registered_delivery: pdu.registered_delivery,
        data_coding: pdu.data_coding,
        text: message,
        message_id: messageId,
      },
    });
    session.send(pdu.response({ message_id: messageId }));
  });
  session.on('deliver_sm_resp', (pdu) => {
    emit({ deliver_sm_resp: { sequence: pdu.sequence_number, status: pdu.command_status } });
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    session.close();
  });
  session.on('close', () => {
    const at = sessions.indexOf(session);
    if (at >= 0) sessions.splice(at, 1);
  });
});

server.listen(Number(port), '127.0.0.1', () => {
  emit({ listening: server.address().port });
});

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line);
  if (command.receipt) {
    const { message_id: id, stat } = command.receipt;
    const session = sessions[sessions.length - 1];
    if (!session) return;
    session.deliver_sm({
      source_addr: '447400123456',
      destination_addr: 'NHS Unlock',
      esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
      short_message: `id:${id} sub:001 dlvrd:001 submit date:2611280900 done date:2611280901 stat:${stat} err:000 text:`,
      receipted_message_id: id,
      message_state: states[stat],
    });
  }
});

process.stdin.on('end', () => process.exit(0));
