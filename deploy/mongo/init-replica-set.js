// Run once by the compose stack's mongo-init container (mongosh): initiate the replica set
// rs0 of mongo1..3 if nobody has, then wait until it has a primary. Safe to run again.
const members = [
  { _id: 0, host: "mongo1:27017", priority: 2 },
  { _id: 1, host: "mongo2:27017", priority: 1 },
  { _id: 2, host: "mongo3:27017", priority: 1 },
];

try {
  rs.status();
  print("replica set rs0 is already initiated");
} catch (error) {
  if (error.codeName !== "NotYetInitialized") {
    throw error;
  }
  rs.initiate({ _id: "rs0", members: members });
  print("replica set rs0 initiated");
}

for (let waited = 0; !db.hello().primary; waited += 1) {
  if (waited >= 120) {
    print("no primary after 120 s");
    quit(1);
  }
  sleep(1000);
}
print(`primary: ${db.hello().primary}`);
