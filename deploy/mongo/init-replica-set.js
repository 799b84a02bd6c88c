// Run by the compose stack's mongo-init container (mongosh) on every `up`: initiate the
// replica set rs0 of mongo1..3 if nobody has, wait until it has a primary, then make sure
// each service has its own user (readWrite on its own database, nothing else) and the
// backup user exists, with the passwords of the environment. Safe to run again: an existing
// user gets its roles and password set anew (so a rotated password applies on the next up).
const members = [
  { _id: 0, host: "mongo1:27017", priority: 2 },
  { _id: 1, host: "mongo2:27017", priority: 1 },
  { _id: 2, host: "mongo3:27017", priority: 1 },
];
const services = ["nomination", "voting", "scoring", "aggregation", "notification", "console"];

function required(name) {
  const value = process.env[name];
  if (!value || value.length < 16) {
    print(`${name} must be set (16+ characters)`);
    quit(2);
  }
  return value;
}

const admin = db.getSiblingDB("admin");
// The keyFile turns authentication on: root was made by mongo1's first start.
admin.auth("root", required("MONGO_ROOT_PASSWORD"));

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

for (let waited = 0; !db.hello().isWritablePrimary; waited += 1) {
  if (waited >= 120) {
    print("no primary after 120 s");
    quit(1);
  }
  sleep(1000);
}
print(`primary: ${db.hello().primary}`);

function ensureUser(name, password, roles) {
  if (admin.getUser(name) === null) {
    admin.createUser({ user: name, pwd: password, roles: roles });
    print(`user ${name} created`);
  } else {
    admin.updateUser(name, { pwd: password, roles: roles });
    print(`user ${name} updated`);
  }
}

for (const service of services) {
  ensureUser(service, required(`MONGO_PASSWORD_${service.toUpperCase()}`),
             [{ role: "readWrite", db: `pingxuan_${service}` }]);
}
// mongodump/mongorestore of every service's database (deploy/backup.sh, restore.sh).
ensureUser("backup", required("MONGO_PASSWORD_BACKUP"),
           [{ role: "backup", db: "admin" }, { role: "restore", db: "admin" }]);
