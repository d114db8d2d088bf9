package localcloud;

import java.lang.instrument.Instrumentation;

/**
 * A Java agent that does nothing.
 *
 * LocalStack starts DynamoDB Local with "-javaagent:ddb-local-loader.jar", a patch it downloads
 * at first use. Offline there is nothing to download, so the embedded local cloud builds this
 * jar from source and puts it where LocalStack looks: DynamoDB Local then runs unpatched.
 */
public final class NoopAgent {
    private NoopAgent() {}

    public static void premain(String arguments, Instrumentation instrumentation) {}

    public static void agentmain(String arguments, Instrumentation instrumentation) {}
}
