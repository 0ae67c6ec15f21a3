import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipInputStream;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * Checks what scripts/android-aar.sh wrote (run by aar-test.sh with the JDK's source launcher):
 * the AAR's entries, its manifest, its classes (only io.stint and io.stint.android, Java 8 class
 * files, the API), its consumer rules, and the POM. Prints each failure, exits 1 on any.
 *
 * Usage: java AarCheck.java AAR POM VERSION NATIVE(0|1) CLASSPATH_FOR_LOADING
 */
public class AarCheck {
    private static final String ANDROID_NS = "http://schemas.android.com/apk/res/android";
    private static final List<String> failures = new ArrayList<>();

    private static void check(boolean ok, String what) {
        if (!ok) failures.add(what);
    }

    public static void main(String[] args) throws Exception {
        File aar = new File(args[0]);
        File pom = new File(args[1]);
        String version = args[2];
        boolean native_ = args[3].equals("1");
        String loadPath = args[4];

        check(aar.getName().equals("stint-" + version + ".aar"), "the AAR is named stint-" + version + ".aar: " + aar);
        check(pom.getName().equals("stint-" + version + ".pom"), "the POM is named stint-" + version + ".pom: " + pom);
        byte[] manifest = null;
        byte[] classesJar = null;
        byte[] proguard = null;
        TreeSet<String> entries = new TreeSet<>();
        try (ZipFile zip = new ZipFile(aar)) {
            for (ZipEntry entry : java.util.Collections.list(zip.entries())) {
                if (entry.isDirectory()) continue;
                entries.add(entry.getName());
                byte[] bytes = zip.getInputStream(entry).readAllBytes();
                switch (entry.getName()) {
                    case "AndroidManifest.xml": manifest = bytes; break;
                    case "classes.jar": classesJar = bytes; break;
                    case "proguard.txt": proguard = bytes; break;
                    default: break;
                }
            }
        }
        TreeSet<String> expected = new TreeSet<>(Arrays.asList("AndroidManifest.xml", "R.txt", "classes.jar", "proguard.txt"));
        TreeSet<String> jni = new TreeSet<>();
        for (String name : entries) if (name.startsWith("jni/")) jni.add(name);
        TreeSet<String> rest = new TreeSet<>(entries);
        rest.removeAll(jni);
        check(rest.equals(expected), "the AAR's entries besides jni/ are " + expected + ": " + rest);
        if (native_) {
            check(!jni.isEmpty(), "a native AAR has jni/<abi>/libstint.so");
            for (String name : jni) check(name.matches("jni/(arm64-v8a|armeabi-v7a|x86_64|x86)/libstint\\.so"), "unexpected " + name);
        } else {
            check(jni.isEmpty(), "a --no-native AAR has no jni/: " + jni);
        }

        if (manifest != null) checkManifest(manifest);
        if (proguard != null) {
            String rules = new String(proguard, "UTF-8");
            check(rules.contains("-keep class com.sun.jna.** { *; }"), "proguard.txt keeps JNA");
            check(rules.contains("-keep class io.stint.** { *; }"), "proguard.txt keeps the binding");
        }
        if (classesJar != null) checkClasses(classesJar, loadPath);
        checkPom(pom, version);

        if (failures.isEmpty()) {
            System.out.println("aar-check: " + aar + " and " + pom + ": OK (" + entries.size() + " entries)");
        } else {
            for (String failure : failures) System.err.println("aar-check: FAIL: " + failure);
            System.exit(1);
        }
    }

    private static Document parse(InputStream in) throws Exception {
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        factory.setNamespaceAware(true);
        return factory.newDocumentBuilder().parse(in);
    }

    private static void checkManifest(byte[] bytes) throws Exception {
        Element root = parse(new ByteArrayInputStream(bytes)).getDocumentElement();
        check(root.getTagName().equals("manifest"), "AndroidManifest.xml's root is <manifest>");
        check(root.getAttribute("package").equals("io.stint"), "the manifest's package is io.stint");
        NodeList sdk = root.getElementsByTagName("uses-sdk");
        check(sdk.getLength() == 1 && ((Element) sdk.item(0)).getAttributeNS(ANDROID_NS, "minSdkVersion").equals("21"),
            "the manifest has <uses-sdk android:minSdkVersion=\"21\">");
        NodeList permissions = root.getElementsByTagName("uses-permission");
        boolean internet = false;
        for (int i = 0; i < permissions.getLength(); i++) {
            internet |= ((Element) permissions.item(i)).getAttributeNS(ANDROID_NS, "name").equals("android.permission.INTERNET");
        }
        check(internet, "the manifest asks for android.permission.INTERNET");
    }

    private static void checkClasses(byte[] jarBytes, String loadPath) throws Exception {
        File jar = File.createTempFile("classes", ".jar");
        jar.deleteOnExit();
        java.nio.file.Files.write(jar.toPath(), jarBytes);
        TreeSet<String> packages = new TreeSet<>();
        try (ZipInputStream in = new ZipInputStream(new ByteArrayInputStream(jarBytes))) {
            for (ZipEntry entry; (entry = in.getNextEntry()) != null; ) {
                String name = entry.getName();
                if (name.endsWith(".kotlin_module")) {
                    check(name.equals("META-INF/stint.kotlin_module"),
                        "the Kotlin module file is META-INF/stint.kotlin_module (an APK holds every library's side by side): " + name);
                }
                if (!name.endsWith(".class")) continue;
                packages.add(name.substring(0, name.lastIndexOf('/')));
                byte[] head = in.readNBytes(8);
                int major = ((head[6] & 0xff) << 8) | (head[7] & 0xff);
                check(major <= 52, name + " is a Java 8 class file (major 52), for D8: major " + major);
            }
        }
        check(packages.equals(new TreeSet<>(Arrays.asList("io/stint", "io/stint/android"))),
            "classes.jar holds io.stint and io.stint.android only (no stub): " + packages);

        // The API, loaded with the test-only stubs standing in for android.jar.
        List<URL> urls = new ArrayList<>();
        urls.add(jar.toURI().toURL());
        for (String path : loadPath.split(File.pathSeparator)) urls.add(new File(path).toURI().toURL());
        try (URLClassLoader loader = new URLClassLoader(urls.toArray(new URL[0]), null)) {
            Class<?> callbacksApi = loader.loadClass("android.app.Application$ActivityLifecycleCallbacks");
            Class<?> callbacks = Class.forName("io.stint.android.StintActivityLifecycleCallbacks", false, loader);
            check(callbacksApi.isAssignableFrom(callbacks), "StintActivityLifecycleCallbacks implements Application.ActivityLifecycleCallbacks");
            callbacks.getConstructor(long.class);
            callbacks.getConstructor();
            Class<?> android = Class.forName("io.stint.android.StintAndroid", false, loader);
            Method start = android.getMethod("start", loader.loadClass("android.app.Application"), String.class,
                Class.forName("io.stint.StintOptions", false, loader));
            check(Modifier.isStatic(start.getModifiers()), "StintAndroid.start is static for Java callers (@JvmStatic)");
            android.getMethod("start", loader.loadClass("android.app.Application"), String.class);
            Class.forName("io.stint.Stint", false, loader).getMethod("openSession");
        } catch (ReflectiveOperationException | LinkageError error) {
            failures.add("the API of the issue: " + error);
        }
    }

    private static String text(Element parent, String tag) {
        NodeList nodes = parent.getElementsByTagName(tag);
        return nodes.getLength() == 0 ? null : nodes.item(0).getTextContent().trim();
    }

    private static void checkPom(File pom, String version) throws Exception {
        Element project;
        try (InputStream in = new java.io.FileInputStream(pom)) {
            project = parse(in).getDocumentElement();
        }
        String groupId = null, artifactId = null, ownVersion = null, packaging = null;
        for (org.w3c.dom.Node node = project.getFirstChild(); node != null; node = node.getNextSibling()) {
            if (!(node instanceof Element)) continue;
            String value = node.getTextContent().trim();
            switch (node.getLocalName()) {
                case "groupId": groupId = value; break;
                case "artifactId": artifactId = value; break;
                case "version": ownVersion = value; break;
                case "packaging": packaging = value; break;
                default: break;
            }
        }
        check("io.stint".equals(groupId) && "stint-android".equals(artifactId) && version.equals(ownVersion),
            "the POM is io.stint:stint-android:" + version + ": " + groupId + ":" + artifactId + ":" + ownVersion);
        check("aar".equals(packaging), "the POM's packaging is aar: " + packaging);
        NodeList dependencies = project.getElementsByTagName("dependency");
        boolean jna = false;
        for (int i = 0; i < dependencies.getLength(); i++) {
            Element dependency = (Element) dependencies.item(i);
            if ("net.java.dev.jna".equals(text(dependency, "groupId")) && "jna".equals(text(dependency, "artifactId"))) {
                jna = "aar".equals(text(dependency, "type")) && text(dependency, "version") != null
                    && text(dependency, "version").startsWith("5.");
            }
        }
        check(jna, "the POM depends on net.java.dev.jna:jna:5.x as an aar (<type>aar</type>)");
    }
}
