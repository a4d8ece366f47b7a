// Certificates for tests and local runs: a throwaway CA and server certificates
// it signs. In a cluster, cert-manager issues them instead (see infra/).
import forge from 'node-forge';

export interface Pem {
  cert: string;
  key: string;
}

export interface CertificateAuthority extends Pem {
  /** Issue a server certificate for the given DNS names and IP addresses. */
  issue(opts: { commonName?: string; dnsNames?: string[]; ipAddresses?: string[]; days?: number }): Pem;
}

function serial(): string {
  // Positive 16-byte serial number as hex.
  return '01' + forge.util.bytesToHex(forge.random.getBytesSync(15));
}

function validity(cert: forge.pki.Certificate, days: number): void {
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + days * 86_400_000);
}

export function createCA(commonName = 'kreconcile-dev-ca', days = 365): CertificateAuthority {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  validity(cert, days);
  const attrs = [{ name: 'commonName', value: commonName }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  const caCert = cert;
  const caKey = keys.privateKey;

  return {
    cert: forge.pki.certificateToPem(caCert),
    key: forge.pki.privateKeyToPem(caKey),
    issue({ commonName: cn = 'localhost', dnsNames = ['localhost'], ipAddresses = ['127.0.0.1'], days: d = days }) {
      const leafKeys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
      const leaf = forge.pki.createCertificate();
      leaf.publicKey = leafKeys.publicKey;
      leaf.serialNumber = serial();
      validity(leaf, d);
      leaf.setSubject([{ name: 'commonName', value: cn }]);
      leaf.setIssuer(caCert.subject.attributes);
      leaf.setExtensions([
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [...dnsNames.map((value) => ({ type: 2, value })), ...ipAddresses.map((ip) => ({ type: 7, ip }))],
        },
      ]);
      leaf.sign(caKey, forge.md.sha256.create());
      return { cert: forge.pki.certificateToPem(leaf), key: forge.pki.privateKeyToPem(leafKeys.privateKey) };
    },
  };
}
